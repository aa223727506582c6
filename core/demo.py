"""`flask demo` (being written)."""
import click


@click.command("demo")
def demo_command():
    """Seed a demo district."""
    raise click.ClickException("flask demo is being written")
