from django.core.management.base import BaseCommand

from traffic.visitors import visitors_rebuild


class Command(BaseCommand):
    help = ("Build the daily human visitor sets again from the page views, day by day: after changing TIME_ZONE, "
            "or for page views written before the sets existed. Page views keep being written meanwhile; a day "
            "rebuilt while its hits arrive is rebuilt in one transaction and loses none.")

    def handle(self, *args, **options):
        days = visitors_rebuild(log=lambda line: self.stdout.write(line) if options["verbosity"] > 1 else None)
        self.stdout.write(f"{days} days of visitor sets rebuilt.")
