"""Page-view hits classified: bot or person, and the device; bursts per address and minute."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.cache.backends.locmem import LocMemCache

from traffic import classify as classify_module
from traffic.classify import BurstCounter, Verdict, bot_reason, classify, device_class

# Real user agents, as sent.
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
AHREFSBOT = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)"
FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
CURL = "curl/8.5.0"
PYTHON_REQUESTS = "python-requests/2.31.0"
PUPPETEER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/121.0.6167.85 Safari/537.36"
)
PHANTOMJS = "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1"
SLIMERJS = "Mozilla/5.0 (X11; Linux x86_64; rv:60.0) Gecko/20100101 SlimerJS/1.0.0"

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)
ANDROID_CHROME_TABLET = (
    "Mozilla/5.0 (Linux; Android 11; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
MACOS_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
)
KINDLE_SILK = (
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/116.3.4 like Chrome/116.0.5845.241 Safari/537.36"
)
FIREFOX_ANDROID_PHONE = "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0"
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 4.4; Tablet; rv:41.0) Gecko/41.0 Firefox/41.0"
FIREFOX_OS_TABLET = "Mozilla/5.0 (Tablet; rv:26.0) Gecko/26.0 Firefox/26.0"
# Silk on a Fire tablet asking for desktop sites.
SILK_DESKTOP_MODE = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Silk/44.1.54 like Chrome/44.0.2403.63 Safari/537.36"
)
# Internet Explorer on a Windows 7 PC with the tablet components installed.
IE9_TABLET_PC = (
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; SLCC2; .NET CLR 2.0.50727; Media Center PC 6.0; "
    "Tablet PC 2.0)"
)
OPERA_MINI_ANDROID = "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16"
WINDOWS_PHONE = (
    "Mozilla/5.0 (Mobile; Windows Phone 8.1; Android 4.0; ARM; Trident/7.0; Touch; rv:11.0; IEMobile/11.0; NOKIA; "
    "Lumia 635) like iPhone OS 7_0_3 Mac OS X AppleWebKit/537 (KHTML, like Gecko) Mobile Safari/537"
)
CHROMEOS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
SAMSUNG_TV = (
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36"
)
XBOX_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/48.0.2564.82 Safari/537.36 Edge/14.14393"
)

BROWSERS = [
    IPHONE_SAFARI,
    ANDROID_CHROME_PHONE,
    ANDROID_CHROME_TABLET,
    IPAD_SAFARI,
    WINDOWS_CHROME,
    MACOS_SAFARI,
    LINUX_FIREFOX,
    SAMSUNG_INTERNET,
    KINDLE_SILK,
    FIREFOX_ANDROID_PHONE,
    OPERA_MINI_ANDROID,
    CHROMEOS,
]

# What a person's browser sends and its script reports.
PERSON = {"webdriver": False, "has_js": True, "accept_language": "en-GB,en;q=0.9", "screen_width": 1440}

GARBAGE = [
    "<script>alert(1)</script>",
    "A" * 10_000,
    "' OR 1=1 --",
    "\x00\r\n\t",
    "Mozilla/5.0 (\u263a; \u00e9t\u00e9) \U0001f600",
]


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (IPHONE_SAFARI, "mobile"),
        (ANDROID_CHROME_PHONE, "mobile"),
        (SAMSUNG_INTERNET, "mobile"),
        (FIREFOX_ANDROID_PHONE, "mobile"),
        (OPERA_MINI_ANDROID, "mobile"),
        (WINDOWS_PHONE, "mobile"),
        (GOOGLEBOT_SMARTPHONE, "mobile"),
        (ANDROID_CHROME_TABLET, "tablet"),
        (IPAD_SAFARI, "tablet"),
        (KINDLE_SILK, "tablet"),
        (FIREFOX_ANDROID_TABLET, "tablet"),
        (FIREFOX_OS_TABLET, "tablet"),
        (SILK_DESKTOP_MODE, "tablet"),
        (WINDOWS_CHROME, "desktop"),
        (MACOS_SAFARI, "desktop"),
        (LINUX_FIREFOX, "desktop"),
        (CHROMEOS, "desktop"),
        (IE9_TABLET_PC, "desktop"),
        (PUPPETEER, "desktop"),
        (SAMSUNG_TV, "other"),
        (XBOX_EDGE, "other"),
        (GOOGLEBOT, "other"),
        (CURL, "other"),
        (PYTHON_REQUESTS, "other"),
        ("", "other"),
    ],
)
def test_device_class(user_agent, device):
    assert device_class(user_agent) == device


@pytest.mark.parametrize(
    ("user_agent", "token"),
    [
        (GOOGLEBOT, "Googlebot"),
        (GOOGLEBOT_SMARTPHONE, "Googlebot"),
        (BINGBOT, "bingbot"),
        (AHREFSBOT, "Ahrefs"),
        (GPTBOT, "GPTBot"),
        (FACEBOOK, "facebookexternalhit"),
        (CURL, "curl"),
        (PYTHON_REQUESTS, "python-requests"),
    ],
)
def test_a_crawler_is_named_by_the_token_matched(user_agent, token):
    assert bot_reason(user_agent=user_agent, **PERSON) == f"crawler: {token}"


@pytest.mark.parametrize("user_agent", BROWSERS)
def test_a_person_in_a_browser_is_no_bot(user_agent):
    assert bot_reason(user_agent=user_agent, **PERSON) == ""


@pytest.mark.parametrize("user_agent", ["", "   ", None])
def test_no_user_agent_comes_before_every_other_sign(user_agent):
    reason = bot_reason(user_agent=user_agent, webdriver=True, has_js=False, accept_language="")
    assert reason == "no user agent"


def test_a_headless_browser_not_known_as_a_crawler():
    assert bot_reason(user_agent=SLIMERJS, **PERSON) == "headless browser"


@pytest.mark.parametrize("user_agent", [PUPPETEER, PHANTOMJS, SLIMERJS])
def test_the_headless_tokens_hold_without_crawlerdetect(user_agent, monkeypatch):
    # crawlerdetect 0.4.2 knows HeadlessChrome and PhantomJS itself; this rule
    # is what still names them if a later version stops doing so.
    monkeypatch.setattr(classify_module, "_crawler_token", lambda user_agent: "")
    assert bot_reason(user_agent=user_agent, **PERSON) == "headless browser"


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        (PUPPETEER, "crawler: Headless"),
        (PHANTOMJS, "crawler: PhantomJS/"),
    ],
)
def test_a_headless_browser_crawlerdetect_knows_reports_the_crawler(user_agent, reason):
    assert bot_reason(user_agent=user_agent, **PERSON) == reason


def test_a_crawler_reports_the_crawler_before_the_automation_it_shows():
    reason = bot_reason(user_agent=GOOGLEBOT, webdriver=True, has_js=True, accept_language="", screen_width=0)
    assert reason == "crawler: Googlebot"


def test_navigator_webdriver():
    reason = bot_reason(user_agent=WINDOWS_CHROME, **{**PERSON, "webdriver": True})
    assert reason == "automated browser (navigator.webdriver)"


def test_a_headless_user_agent_is_named_before_navigator_webdriver():
    assert bot_reason(user_agent=SLIMERJS, **{**PERSON, "webdriver": True}) == "headless browser"


def test_navigator_webdriver_is_named_before_the_screen():
    reason = bot_reason(user_agent=WINDOWS_CHROME, **{**PERSON, "webdriver": True, "screen_width": 0})
    assert reason == "automated browser (navigator.webdriver)"


@pytest.mark.parametrize("accept_language", ["", "  "])
def test_a_no_js_hit_without_accept_language(accept_language):
    reason = bot_reason(user_agent=WINDOWS_CHROME, has_js=False, accept_language=accept_language)
    assert reason == "no-JS hit without Accept-Language"


def test_a_no_js_hit_with_accept_language_is_a_person():
    assert bot_reason(user_agent=WINDOWS_CHROME, has_js=False, accept_language="de-DE,de;q=0.9") == ""


def test_a_js_hit_without_accept_language_is_a_person():
    assert bot_reason(user_agent=WINDOWS_CHROME, has_js=True, accept_language="", screen_width=1920) == ""


def test_a_js_hit_with_no_screen():
    assert bot_reason(user_agent=IPHONE_SAFARI, **{**PERSON, "screen_width": 0}) == "no screen"


@pytest.mark.parametrize("screen_width", [None, 1, 390])
def test_a_screen_not_reported_or_of_some_width_is_a_person(screen_width):
    assert bot_reason(user_agent=IPHONE_SAFARI, **{**PERSON, "screen_width": screen_width}) == ""


def test_the_screen_rule_is_for_js_hits_only():
    assert bot_reason(user_agent=IPHONE_SAFARI, has_js=False, accept_language="en", screen_width=0) == ""


def test_a_long_crawler_token_is_cut():
    reason = bot_reason(user_agent="x" * 300 + "bot/1.0", **PERSON)
    assert reason.startswith("crawler: xxx")
    assert len(reason) == len("crawler: ") + classify_module.REASON_TOKEN_CHARS


def test_only_the_start_of_a_long_user_agent_is_checked_for_crawlers():
    padding = " " * (classify_module.CRAWLER_CHECK_CHARS - len(WINDOWS_CHROME))
    assert bot_reason(user_agent=WINDOWS_CHROME + padding + "Googlebot/2.1", **PERSON) == ""
    assert bot_reason(user_agent=WINDOWS_CHROME + padding[:-20] + "Googlebot/2.1", **PERSON) == "crawler: Googlebot"


@pytest.mark.parametrize("user_agent", GARBAGE, ids=["script", "10kB", "sql", "control", "unicode"])
def test_garbage_is_classified_without_error(user_agent):
    assert classify(user_agent=user_agent, **PERSON) == Verdict(kind="human", reason="", device="other")


@pytest.mark.parametrize(
    ("kwargs", "verdict"),
    [
        ({"user_agent": GOOGLEBOT_SMARTPHONE}, Verdict("bot", "crawler: Googlebot", "mobile")),
        ({"user_agent": GPTBOT}, Verdict("bot", "crawler: GPTBot", "other")),
        ({"user_agent": ""}, Verdict("bot", "no user agent", "other")),
        ({"user_agent": IPAD_SAFARI, "webdriver": True}, Verdict("bot", "automated browser (navigator.webdriver)", "tablet")),
        ({"user_agent": LINUX_FIREFOX, "has_js": False}, Verdict("bot", "no-JS hit without Accept-Language", "desktop")),
        ({"user_agent": LINUX_FIREFOX, "has_js": False, "accept_language": "fr"}, Verdict("human", "", "desktop")),
        ({"user_agent": IPHONE_SAFARI, "screen_width": 390}, Verdict("human", "", "mobile")),
        ({"user_agent": SAMSUNG_INTERNET}, Verdict("human", "", "mobile")),
    ],
)
def test_classify(kwargs, verdict):
    assert classify(**kwargs) == verdict


# Burst counting, on the local-memory cache and on fixed moments.
MINUTE = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def cache():
    cache = LocMemCache("traffic-tests", {})
    cache.clear()
    yield cache
    cache.clear()


def test_hits_are_counted_within_their_minute(cache):
    counter = BurstCounter(cache)
    counts = [counter.hit("addr-a", MINUTE + timedelta(seconds=s)) for s in (0, 1, 30, 59)]
    assert counts == [1, 2, 3, 4]


def test_the_count_starts_again_at_the_next_minute(cache):
    counter = BurstCounter(cache)
    assert counter.hit("addr-a", MINUTE + timedelta(seconds=58)) == 1
    assert counter.hit("addr-a", MINUTE + timedelta(seconds=59, microseconds=999_999)) == 2
    assert counter.hit("addr-a", MINUTE + timedelta(minutes=1)) == 1
    assert counter.hit("addr-a", MINUTE + timedelta(minutes=1, seconds=1)) == 2
    # A late hit still counts in its own minute.
    assert counter.hit("addr-a", MINUTE + timedelta(seconds=59)) == 3


def test_each_address_has_its_own_count(cache):
    counter = BurstCounter(cache)
    counter.hit("addr-a", MINUTE)
    counter.hit("addr-a", MINUTE)
    assert counter.hit("addr-b", MINUTE) == 1
    assert counter.hit("addr-a", MINUTE) == 3


def test_the_same_instant_in_another_zone_is_the_same_minute(cache):
    counter = BurstCounter(cache)
    counter.hit("addr-a", MINUTE)
    assert counter.hit("addr-a", MINUTE.astimezone(ZoneInfo("Asia/Kolkata"))) == 2


def test_two_counters_on_one_cache_share_the_count(cache):
    BurstCounter(cache).hit("addr-a", MINUTE)
    assert BurstCounter(cache).hit("addr-a", MINUTE) == 2


class _RecordingCache:
    """A cache whose incr() finds no key the first `misses` times, as after an expiry between add() and incr()."""

    def __init__(self, misses):
        self.misses = misses
        self.values = {}
        self.adds = []

    def add(self, key, value, timeout):
        self.adds.append((key, value, timeout))
        self.values.setdefault(key, value)
        return True

    def incr(self, key):
        if self.misses:
            self.misses -= 1
            self.values.pop(key, None)
            raise ValueError(f"Key '{key}' not found.")
        self.values[key] += 1
        return self.values[key]


def test_a_key_is_added_with_a_two_minute_timeout():
    cache = _RecordingCache(misses=0)
    assert BurstCounter(cache).hit("addr-a", MINUTE) == 1
    [(_, value, timeout)] = cache.adds
    assert (value, timeout) == (0, 120)


def test_a_key_gone_before_incr_is_added_again():
    cache = _RecordingCache(misses=1)
    assert BurstCounter(cache).hit("addr-a", MINUTE) == 1
    assert len(cache.adds) == 2


def test_a_key_gone_twice_is_an_error():
    with pytest.raises(ValueError):
        BurstCounter(_RecordingCache(misses=2)).hit("addr-a", MINUTE)


@pytest.mark.parametrize(("count", "limit", "burst"), [(0, 0, False), (5, 5, False), (6, 5, True), (60, 30, True)])
def test_a_burst_is_a_count_over_the_limit(count, limit, burst):
    assert BurstCounter.is_burst(count, limit) is burst
