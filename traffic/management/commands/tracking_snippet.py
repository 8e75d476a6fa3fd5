from django.core.management.base import BaseCommand

from traffic.snippet import snippet_html


class Command(BaseCommand):
    help = "Print the HTML to paste into the website's pages (before </body>) to record its page views."

    def add_arguments(self, parser):
        parser.add_argument("--site-url", help="where the website reaches the CRM (default: CRM_SITE_URL)")

    def handle(self, *args, site_url=None, **options):
        self.stdout.write(snippet_html(site_url))
