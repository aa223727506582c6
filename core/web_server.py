"""How `flask serve` runs gunicorn: the options beyond bind address and worker count."""
from importlib.metadata import version


def gunicorn_options():
    """Extra gunicorn command-line options."""
    options = []
    major = int(version("gunicorn").split(".")[0])
    # gunicorn 27 opens a control socket at one fixed path in $HOME, which a
    # second instance (another checkout, the test suite) would take over.
    if major >= 27:
        options.append("--no-control-socket")
    return options
