from django.db import migrations, models


class Migration(migrations.Migration):
    """The mode "Detect the mode" found on the account form, for which host:port, and when."""

    dependencies = [
        ("xmailadmin", "0010_relayjob"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="detected_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="account",
            name="detected_for",
            field=models.CharField(blank=True, editable=False, max_length=300),
        ),
        migrations.AddField(
            model_name="account",
            name="detected_mode",
            field=models.CharField(
                blank=True,
                choices=[("smtps", "SMTPS (implicit TLS)"), ("starttls", "STARTTLS")],
                editable=False,
                max_length=16,
            ),
        ),
    ]
