"""What the people in the load run do, for Locust (bench/load_bench.py starts it in a process of its own).

Locust patches the standard library for gevent, so it never runs in the bench's or the app's processes. The
bench writes what the users need (the form's slug, an API token, the reps' logins, lead ids) to a JSON file
named by LOAD_BENCH_CONFIG, and picks the user classes and their counts (`fixed_count`) on the command line.

Every request carries `X-Forwarded-Proto: https`, as from the TLS proxy production runs behind (the HTTPS
redirect and Secure cookies stay on). A cookie jar keeps Secure cookies received over plain HTTP but never
sends them back, so the users that need cookies (CSRF, the session) keep their own, as rep_pages_bench's
Browser does. Each user keeps a fixed pace (`constant_throughput`), so the run
without the emails and the run with them offer the same requests per second, and the latencies compare.
A response that is not the one a person expects (a status, a redirect to the login page, a form shown
again with errors) is a failure.
"""

import itertools
import json
import os
import random
import re
import uuid
from http.cookies import SimpleCookie
from pathlib import Path

from locust import FastHttpUser, constant_throughput, task

CONFIG = json.loads(Path(os.environ["LOAD_BENCH_CONFIG"]).read_text())
PROXY = {"X-Forwarded-Proto": "https"}
BROWSER = {
    **PROXY,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept-Language": "en-GB,en;q=0.8",
}
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FILL_TOKEN = re.compile(r'name="crm_token" value="([^"]*)"')
PAGES = ("pricing", "features", "demo", "blog/crm-tips", "customers")


class Cookies(dict):
    """A browser's cookies for the one site, by name: what the Set-Cookie headers of each response said."""

    def keep(self, response) -> None:
        for header in response.headers.getlist("Set-Cookie") if response.headers else []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0":
                    self.pop(name, None)
                else:
                    self[name] = morsel.value

    def headers(self, **extra) -> dict:
        return {**BROWSER, **({"Cookie": "; ".join(f"{k}={v}" for k, v in self.items())} if self else {}), **extra}


def users(group: str) -> int:
    return CONFIG["users"][group]["users"]


def pace(group: str):
    return constant_throughput(CONFIG["users"][group]["per_user_per_s"])


class Visitor(FastHttpUser):
    """A website visitor: the tracking snippet sends a page view (a beacon, text/plain) at each page."""

    fixed_count = users("tracking")
    wait_time = pace("tracking")

    def on_start(self):
        self.visitor = uuid.uuid4().hex[:20]
        self.views = 0

    @task
    def page_view(self):
        self.views += 1
        site = CONFIG["site"]
        body = {"v": self.visitor, "u": f"https://{site}/{PAGES[self.views % len(PAGES)]}", "t": "Load run",
                "r": "https://www.google.com/", "l": 1 if self.views == 1 else 0, "sw": 1440}
        if self.views == 1:
            body["lp"] = f"https://{site}/?utm_source=google&utm_medium=cpc&utm_campaign=load"
        headers = {**BROWSER, "Origin": f"https://{site}", "Content-Type": "text/plain;charset=UTF-8"}
        with self.client.post("/t/hit", data=json.dumps(body), headers=headers, name="tracking: hit",
                              catch_response=True) as response:
            if response.status_code != 204:
                response.failure(f"{response.status_code}: {response.text[:200]}")
        if self.views >= 10:  # ten pages, then a new visitor
            self.on_start()


class FormFiller(FastHttpUser):
    """Someone who opens the hosted form (/f/<slug>/), fills it in with a new email and sends it."""

    fixed_count = users("capture")
    wait_time = pace("capture")
    sent = itertools.count(1)

    @task
    def fill_in(self):
        path = f"/f/{CONFIG['form_slug']}/"
        cookies = Cookies()  # a new person each time
        with self.client.get(path, headers=cookies.headers(), name="capture: form page", catch_response=True) as page:
            cookies.keep(page)
            csrf, token = CSRF_FIELD.search(page.text or ""), FILL_TOKEN.search(page.text or "")
            if page.status_code != 200 or not csrf or not token:
                page.failure(f"{page.status_code}, csrf {'found' if csrf else 'missing'}, "
                             f"fill token {'found' if token else 'missing'}")
                return
        n = next(self.sent)
        form = {
            "csrfmiddlewaretoken": csrf.group(1), "crm_token": token.group(1), "crm_hp": "",
            "email": f"{CONFIG['run_id']}-{os.getpid()}-{n}@load.bench.example", "first_name": "Ada",
            "last_name": f"Load {n}", "consent": "on", "crm_visitor": f"v{CONFIG['run_id']}{n}",
        }
        origin = self.host.replace("http://", "https://")
        headers = cookies.headers(Origin=origin, Referer=f"{origin}{path}")
        with self.client.post(path, data=form, headers=headers, name="capture: form post", allow_redirects=False,
                              catch_response=True) as sent:
            if sent.status_code != 200 or 'id="thank-you"' not in (sent.text or ""):
                sent.failure(f"{sent.status_code}, no thank-you: {(sent.text or '')[:200]}")


class Integration(FastHttpUser):
    """Another system on the REST API with a rep's token: reads the rep's leads, one lead, adds a lead."""

    fixed_count = users("api")
    wait_time = pace("api")
    made = itertools.count(1)

    def on_start(self):
        self.headers = {**PROXY, "Authorization": f"Bearer {CONFIG['api_token']}", "Accept": "application/json"}

    def check(self, response, status):
        if response.status_code != status:
            response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(3)
    def lead_list(self):
        with self.client.get("/api/v1/leads/?page_size=25", headers=self.headers, name="api: lead list",
                             catch_response=True) as response:
            self.check(response, 200)

    @task(2)
    def lead(self):
        lead = random.choice(CONFIG["api_lead_ids"])
        with self.client.get(f"/api/v1/leads/{lead}/", headers=self.headers, name="api: lead",
                             catch_response=True) as response:
            self.check(response, 200)

    @task(1)
    def lead_create(self):
        n = next(self.made)
        body = {"email": f"{CONFIG['run_id']}-{os.getpid()}-{n}@api.load.bench.example", "first_name": "Grace",
                "last_name": f"Api {n}"}
        with self.client.post("/api/v1/leads/", json=body, headers=self.headers, name="api: create lead",
                              catch_response=True) as response:
            self.check(response, 201)


class Rep(FastHttpUser):
    """A sales rep in the workspace, logged in through the login form: Today, the leads list, a lead's page."""

    fixed_count = users("reps")
    wait_time = pace("reps")
    logins = itertools.count()

    def on_start(self):
        reps = CONFIG["reps"]
        self.rep = reps[next(self.logins) % len(reps)]
        login = CONFIG["urls"]["login"]
        origin = self.host.replace("http://", "https://")
        self.cookies = Cookies()
        page = self.client.get(login, headers=self.cookies.headers(), name="reps: login page")
        self.cookies.keep(page)
        csrf = CSRF_FIELD.search(page.text or "")
        if page.status_code != 200 or not csrf:
            raise RuntimeError(f"login page: {page.status_code}")
        form = {"csrfmiddlewaretoken": csrf.group(1), "username": self.rep["username"], "password": CONFIG["password"]}
        headers = self.cookies.headers(Origin=origin, Referer=f"{origin}{login}")
        with self.client.post(login, data=form, headers=headers, name="reps: log in", allow_redirects=False,
                              catch_response=True) as response:
            self.cookies.keep(response)
            if response.status_code != 302 or "sessionid" not in self.cookies:
                response.failure(f"login refused: {response.status_code}")

    def page(self, url, name):
        with self.client.get(url, headers=self.cookies.headers(Accept="text/html"), name=name, allow_redirects=False,
                             catch_response=True) as response:
            self.cookies.keep(response)
            if response.status_code != 200:  # a 302 here is the login page: the session is gone
                response.failure(f"{response.status_code} {response.headers.get('Location', '')}")

    @task
    def today(self):
        self.page(CONFIG["urls"]["today"], "reps: today")

    @task
    def leads(self):
        self.page(CONFIG["urls"]["leads"], "reps: leads list")

    @task
    def lead(self):
        self.page(CONFIG["urls"]["lead"].format(id=random.choice(self.rep["lead_ids"])), "reps: lead page")
