"""`flask serve` (being written)."""
import click


@click.command("serve")
def serve_command():
    """Start web, workers and embedded Redis."""
    raise click.ClickException("flask serve is being written")
