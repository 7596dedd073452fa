from django.db import migrations


class Migration(migrations.Migration):
    """RelayCheck holds checks and applies: it is a RelayJob. Renamed, so its rows stay."""

    dependencies = [
        ("xmailadmin", "0009_reason_text"),
    ]

    operations = [
        migrations.RenameModel(old_name="RelayCheck", new_name="RelayJob"),
    ]
