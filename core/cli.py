"""Commands of the service as a whole: serve, worker, demo, inbound."""


def register_cli(app):
    from core.demo import demo_command
    from core.inbound import inbound_command
    from core.serve import serve_command
    from worker import worker_command

    app.cli.add_command(serve_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(inbound_command)
