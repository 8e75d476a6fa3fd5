"""What a page-view hit is: a person's or a bot's, and from which kind of device.

Pure functions over what the tracking endpoint sees (the User-Agent and
Accept-Language headers) and what its script reports (navigator.webdriver, the
screen width, or that it did not run: the noscript pixel), plus a per-minute
counter of hits from one address kept in Django's cache.

The classifying functions take any string, however long or odd (it comes
from the client), and return without raising.
"""

import re
import threading
from dataclasses import dataclass
from datetime import datetime

from crawlerdetect import CrawlerDetect

# Only this much of a User-Agent is given to crawlerdetect. Its pattern is one
# alternation of ~1,500 crawler names, one of them `[a-z0-9\-_]*(bot|crawl|...)`,
# so its cost grows with the square of a long run of letters: 1 kB of "A" took
# ~0.13 s, 10 kB ~8 s, and 512 characters ~25 ms. Real browsers' and crawlers'
# user agents are shorter (the longest, in-app browsers', run to a few hundred).
CRAWLER_CHECK_CHARS = 512
# A matched crawler token is the matched text, which can be long when the
# generic pattern matches; the reason keeps this much of it.
REASON_TOKEN_CHARS = 100

# CrawlerDetect is not safe to share between threads as it is: is_crawler()
# stores its result on the instance (self.matches) and get_matches() reads it
# back, so a thread can read another thread's match between the two calls. A new
# instance per call would be safe but would lose the instance's LRU cache of
# results, and a miss costs ~0.15 ms against ~10 us for a whole classify() that
# hits it (10,000 typical hits took 0.1 s; 10,000 misses would take 1.5 s).
# So one instance for the process, and the pair is called under a lock; the
# lock costs nothing next to the GIL that the regex holds anyway.
_detector = CrawlerDetect()
_detector_lock = threading.Lock()

# The headless browsers' own tokens. Puppeteer's and Playwright's default user
# agents carry HeadlessChrome. Electron is not here: it is the shell of desktop
# apps (Slack, VS Code, Teams) used by people. crawlerdetect 0.4.2 already
# matches "Headless" and "PhantomJS/", so those hits report the crawler rule.
_HEADLESS = re.compile(r"HeadlessChrome|PhantomJS|SlimerJS")

# Devices that are none of the three: TVs, streaming sticks and consoles
# (an Android TV would otherwise read as a tablet, a Tizen TV as a desktop).
_OTHER_DEVICE = re.compile(
    r"SmartTV|SMART-TV|Smart-TV|Android TV|GoogleTV|HbbTV|Web0S|CrKey|\bAFT[A-Z]|PlayStation|Xbox|Nintendo"
)
# iPad Safari says "Mobile/15E148", so the tablet tokens are looked for first.
_TABLET = re.compile(r"iPad|Tablet(?! PC)|Kindle|Silk")
# Opera Mini on Android has no "Mobile", so the phone tokens come before the
# rule that an Android without "Mobi" is a tablet.
_MOBILE = re.compile(r"iPhone|iPod|Mobi|Windows Phone|Opera Mini")
_ANDROID = re.compile(r"Android")
_DESKTOP = re.compile(r"Windows|Macintosh|X11|Linux|CrOS")


def device_class(user_agent: str) -> str:
    """The device a user agent names: "desktop", "mobile", "tablet" or "other".

    "other" for an empty or unrecognised user agent and for TVs and consoles.
    iPadOS Safari asks for desktop sites with a Macintosh user agent, so those
    iPads are "desktop": only the page's script could tell them apart.
    """
    if not user_agent:
        return "other"
    if _OTHER_DEVICE.search(user_agent):
        return "other"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _ANDROID.search(user_agent):
        return "tablet"
    if _DESKTOP.search(user_agent):
        return "desktop"
    return "other"


def _crawler_token(user_agent: str) -> str:
    """The crawler name crawlerdetect finds in the user agent (at most REASON_TOKEN_CHARS), or "" if none."""
    with _detector_lock:
        if not _detector.isCrawler(user_agent[:CRAWLER_CHECK_CHARS]):
            return ""
        token = _detector.getMatches() or "unnamed"
    return token[:REASON_TOKEN_CHARS]


def bot_reason(
    *,
    user_agent: str,
    webdriver: bool = False,
    has_js: bool = True,
    accept_language: str = "",
    screen_width: int | None = None,
) -> str:
    """Why the hit is a bot's, or "" when nothing says so.

    The first rule that holds gives the reason: no user agent; a crawler's user
    agent ("crawler: <token>"); a headless browser's user agent; a script that
    reports navigator.webdriver; a no-JS hit (the noscript pixel) without an
    Accept-Language header; a JS hit that reports a screen 0 pixels wide.
    `screen_width=None` means not reported, which is no sign of a bot.
    """
    user_agent = (user_agent or "").strip()
    if not user_agent:
        return "no user agent"
    token = _crawler_token(user_agent)
    if token:
        return f"crawler: {token}"
    if _HEADLESS.search(user_agent):
        return "headless browser"
    if webdriver:
        return "automated browser (navigator.webdriver)"
    if not has_js and not (accept_language or "").strip():
        return "no-JS hit without Accept-Language"
    if has_js and screen_width is not None and screen_width <= 0:
        return "no screen"
    return ""


@dataclass(frozen=True)
class Verdict:
    kind: str  # "bot" or "human"
    reason: str  # bot_reason()'s; "" for a human
    device: str  # device_class()'s


def classify(
    *,
    user_agent: str,
    webdriver: bool = False,
    has_js: bool = True,
    accept_language: str = "",
    screen_width: int | None = None,
) -> Verdict:
    """The hit's verdict: "bot" with bot_reason()'s reason, else "human"; and its device_class()."""
    reason = bot_reason(
        user_agent=user_agent,
        webdriver=webdriver,
        has_js=has_js,
        accept_language=accept_language,
        screen_width=screen_width,
    )
    return Verdict(kind="bot" if reason else "human", reason=reason, device=device_class(user_agent or ""))


class BurstCounter:
    """Hits from one address per clock minute, counted in a Django cache (the `cache` API: add, incr).

    The count is shared by every process using the same cache. Each minute has
    its own key, kept TTL seconds from the minute's first hit, so it outlives its
    minute and then goes.
    """

    TTL = 120

    def __init__(self, cache, *, prefix: str = "traffic:burst") -> None:
        self.cache = cache
        self.prefix = prefix

    def key(self, address_hash: str, at: datetime) -> str:
        # Minutes since the epoch: the same instant gives the same key whatever
        # its time zone. A naive `at` is read as local time (datetime.timestamp).
        return f"{self.prefix}:{address_hash}:{int(at.timestamp() // 60)}"

    def hit(self, address_hash: str, at: datetime) -> int:
        """Count one hit from the address in `at`'s minute; the minute's count so far, this hit included.

        Raises the cache's ValueError if the key is gone before incr() twice running.
        """
        key = self.key(address_hash, at)
        self.cache.add(key, 0, self.TTL)
        try:
            return self.cache.incr(key)
        except ValueError:
            # The key expired or was evicted between add() and incr(); the
            # local-memory, memcached and Redis backends raise ValueError then.
            # Once more; a second failure is raised.
            self.cache.add(key, 0, self.TTL)
            return self.cache.incr(key)

    @staticmethod
    def is_burst(count: int, limit: int) -> bool:
        """Whether a minute's count is over the limit (a count equal to it is not)."""
        return count > limit
