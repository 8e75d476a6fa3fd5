"""The workers' URLconf (crm.worker_urls): every link a task or a signal handler can build, at the web's address.

A worker reverses with crm.worker_urls (crm.celery), which has a few routes and no views. These tests keep
it right: each of its routes is the one crm.urls has under the same name, and every name that a module a
worker can run reverses is in it. The modules a worker can run are found by following imports, those
inside functions too, from each app's tasks module (the tasks), its apps module (the signal handlers its
ready() connects) and crm.celery.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.template.loader import get_template
from django.test import override_settings
from django.urls import get_resolver, reverse

from crm.celery import worker_urlconf

ROOT = Path(__file__).resolve().parent.parent.parent
LINK_CALLS = {"reverse", "reverse_lazy", "redirect", "resolve_url"}
TEMPLATE_CALLS = {"render_to_string", "get_template", "select_template"}
TEMPLATE_URL = re.compile(r"""{%\s*url\s+(['"])(.+?)\1""")
TEMPLATE_REFERENCE = re.compile(r"""{%\s*(?:include|extends)\s+(['"])(.+?)\1""")


def our_packages() -> set[str]:
    return {config.name for config in apps.get_app_configs() if Path(config.path).is_relative_to(ROOT)}


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(name: str, tree: ast.AST, packages: set[str]) -> set[str]:
    """Our modules that `name` imports anywhere in its code (an imported name that is not a module: its module)."""
    package = name if module_file(name).name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    modules = set()
    for dotted in found:
        if dotted.split(".")[0] not in packages:
            continue
        while dotted and module_file(dotted) is None:
            dotted = dotted.rpartition(".")[0]
        parts = dotted.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if dotted)
    return modules


def worker_modules() -> dict[str, ast.AST]:
    """Every module of ours a worker can run, with its syntax tree."""
    packages = our_packages()
    roots = [f"{package}.{leaf}" for package in packages for leaf in ("tasks", "apps")] + ["crm.celery"]
    todo, trees = [root for root in roots if module_file(root)], {}
    while todo:
        name = todo.pop()
        if name in trees:
            continue
        trees[name] = ast.parse(module_file(name).read_text(), filename=str(module_file(name)))
        todo.extend(imported_modules(name, trees[name], packages) - trees.keys())
    return trees


def call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def template_url_names(name: str, seen: set[str]) -> set[str]:
    """The names {% url %} reverses in a template and in those it includes or extends."""
    if name in seen:
        return set()
    seen.add(name)
    source = Path(get_template(name).origin.name).read_text()
    names = {match[1] for match in TEMPLATE_URL.findall(source)}
    for _, included in TEMPLATE_REFERENCE.findall(source):
        names |= template_url_names(included, seen)
    return names


def names_workers_reverse() -> tuple[dict[str, set[str]], list[str]]:
    """{URL name: the modules that reverse it}, and the calls whose name is not written out (to be looked at)."""
    names, unknown = {}, []
    for module, tree in worker_modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first, kind = node.args[0], call_name(node)
            if kind in LINK_CALLS | TEMPLATE_CALLS and not isinstance(first, ast.Constant):
                unknown.append(f"{module}:{node.lineno} {ast.unparse(node)}")
            elif kind in LINK_CALLS:
                names.setdefault(first.value, set()).add(module)
            elif kind in TEMPLATE_CALLS:
                for name in template_url_names(first.value, set()):
                    names.setdefault(name, set()).add(f"{module} ({first.value})")
    return names, unknown


def routes(urlconf: str) -> dict[str, list]:
    """{namespaced URL name: what reverse() builds it from (the prefixes, patterns, parameters and converters)}."""
    found = {}

    def walk(resolver, namespace, prefix):
        for key in resolver.reverse_dict:
            if isinstance(key, str):
                for possibilities, _pattern, defaults, converters in resolver.reverse_dict.getlist(key):
                    found.setdefault(namespace + key, []).append(
                        (prefix, possibilities, defaults, {name: type(c) for name, c in converters.items()})
                    )
        for name, (sub_prefix, sub) in resolver.namespace_dict.items():
            walk(sub, f"{namespace}{name}:", prefix + sub_prefix)

    walk(get_resolver(urlconf), "", "")
    return found


def test_every_link_a_worker_builds_is_in_the_worker_urls():
    names, unknown = names_workers_reverse()
    assert not unknown, f"a link whose name is not written out: add its names to crm/worker_urls.py, then here: {unknown}"
    assert names, "no link found: the search for them is broken"
    worker = routes("crm.worker_urls")
    missing = {name: sorted(modules) for name, modules in names.items() if name not in worker}
    assert not missing, f"reversed in a worker but not in crm/worker_urls.py: {missing}"


def test_each_worker_route_is_the_sites():
    site, worker = routes("crm.urls"), routes("crm.worker_urls")
    for name, built in worker.items():
        assert built == site.get(name), f"{name}: crm/worker_urls.py builds it unlike crm/urls.py"


@pytest.mark.parametrize(
    "name, args",
    [
        ("booking:page", ["demo"]),
        ("booking:for_lead", ["abc.def"]),
        ("booking:manage", ["abc.def"]),
        ("workspace:today", []),
        ("workspace:lead_detail", [42]),
    ],
)
def test_the_worker_urls_reverse_to_the_sites_addresses(name, args):
    assert reverse(name, args=args, urlconf="crm.worker_urls") == reverse(name, args=args, urlconf="crm.urls")


def test_a_worker_reverses_with_the_worker_urls():
    with override_settings(ROOT_URLCONF="crm.urls"):
        worker_urlconf()
        assert django_settings.ROOT_URLCONF == "crm.worker_urls"
        assert reverse("workspace:lead_detail", args=[7]) == "/leads/7/"


def test_a_worker_loads_no_view_nor_admin():
    """What a worker does before its pool starts (Celery's Django fixup, the task modules, the URLconf) and its
    first link import none of our views, nor what they stand on: about 30 MB in every worker process. Nor our
    ModelAdmins (crm.apps.AdminConfig), nor requests (crm.apps.AnymailConfig) or urllib3 (outbound.transport
    imports it when a webhook is first sent)."""
    code = (
        "import sys\n"
        "from crm.celery import app, worker_urlconf\n"
        "app.loader.import_default_modules()\n"
        "worker_urlconf()\n"
        "from django.urls import reverse\n"
        "reverse('workspace:lead_detail', args=[1])\n"
        "print(' '.join(sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CELERY_SKIP_CHECKS"}  # as a worker starts: crm.celery's default
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "crm.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    packages = our_packages()
    heavy = (
        "crm.urls",
        "rest_framework.views",
        "drf_spectacular.views",
        "anymail.urls",
        "boto3",
        "botocore",
        "jinja2",
        "pygments",
        "requests",
        "urllib3",
    )
    loaded = [
        name
        for name in result.stdout.split()
        if name in heavy
        or name.split(".")[0] in heavy
        or (name.split(".")[0] in packages and re.search(r"(^|_)(views|admin)$|^admin_", name.rpartition(".")[2]))
    ]
    assert loaded == [], f"a worker imported views or admin modules: {loaded}"
