"""Rewrite suppression hashes under the current key, after CRM_EMAIL_HASH_KEY was rotated."""

from django.core.management.base import BaseCommand

from nurturing.services import suppressions_rehash


class Command(BaseCommand):
    help = (
        "Rewrite under CRM_EMAIL_HASH_KEY the hash of every suppression that still holds its address; "
        "report the erased ones that stay under an old key (they match while it is in CRM_EMAIL_HASH_KEYS_OLD)."
    )

    def handle(self, *args, **options):
        report = suppressions_rehash()
        self.stdout.write(f"Rewrote {report.rehashed} suppression(s) under the current key.")
        if report.merged:
            self.stdout.write(f"Removed {report.merged} that were suppressed under the current key already.")
        for key, count in sorted(report.hash_only_by_key.items()):
            if key in report.old_key_ids:
                self.stdout.write(
                    f"{count} erased address(es) stay under the old key {key}: they are matched while that key is in "
                    "CRM_EMAIL_HASH_KEYS_OLD, so keep it there."
                )
            else:
                self.stderr.write(self.style.WARNING(
                    f"{count} erased address(es) are under the key {key}, which is neither CRM_EMAIL_HASH_KEY nor in "
                    "CRM_EMAIL_HASH_KEYS_OLD: they match nobody until that key is put back in CRM_EMAIL_HASH_KEYS_OLD."
                ))
        if not report.hash_only_by_key:
            self.stdout.write("Every suppression is under the current key: the old keys are no longer needed.")
