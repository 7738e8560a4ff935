"""Registers each domain's click group on the app."""


def register(app):
    from portal.buyers.cli import apikeys_cli, deliver_command, orgs_cli, users_cli
    from portal.certificates.cli import certificates_cli
    from portal.contracts.cli import contracts_cli
    from portal.demo.cli import demo_cli
    from portal.jobs.cli import jobs_cli
    from portal.ledger.cli import ledger_cli
    from portal.offsets.cli import orders_cli
    from portal.payments.cli import payments_cli
    from portal.registry.cli import registry_cli
    from portal.transparency.cli import log_cli
    from portal.webhooks.cli import webhooks_cli

    # `ledger deliver` needs to know organisations; the ledger package itself must not.
    ledger_cli.add_command(deliver_command)
    for group in (
        ledger_cli,
        orgs_cli,
        users_cli,
        apikeys_cli,
        demo_cli,
        orders_cli,
        payments_cli,
        contracts_cli,
        log_cli,
        jobs_cli,
        webhooks_cli,
        registry_cli,
        certificates_cli,
    ):
        app.cli.add_command(group)

    from portal.core import mail

    mail.register_cli(app)
