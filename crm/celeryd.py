"""`python -m crm.celeryd worker|beat [options]`: Celery's worker and beat, without the rest of its command line.

These are Celery's own `worker` and `beat` commands, with the same options
(`python -m crm.celeryd worker --help`), run as `celery -A crm worker|beat`
runs them. When `celery` starts, it imports every one of its subcommands, and
`celery amqp` brings in an interactive shell (click-repl, prompt_toolkit):
about 7 MB in the worker process, which each pool process inherits. Measured
idle with two pool processes: 246 MB of RSS for the three with `celery`,
225 MB with this.

`--detach` is not offered: Celery's detaching starts `celery` itself again.
Run the processes under a supervisor (systemd, Docker, `make run`) instead.
`celery -A crm …` still works for everything, these two commands included.
`make run` (crm.management.commands.run_all), docker-compose.yml and the tests'
workers start the worker and beat this way.
"""

import copy

import click
from celery.bin.base import CLIContext
from celery.bin.beat import beat
from celery.bin.worker import worker

PROG = "python -m crm.celeryd"


@click.group(help=__doc__.split("\n\n")[0])
@click.option("--no-color", "-C", is_flag=True, help="No colors in the output.")
@click.option("--quiet", "-q", is_flag=True, help="No banner.")
@click.pass_context
def main(ctx, no_color, quiet):
    from crm.celery import app

    ctx.obj = CLIContext(app=app, no_color=no_color, workdir=None, quiet=quiet)


def undetached(command: click.Command) -> click.Command:
    """Celery's command, without its --detach option."""
    command = copy.copy(command)
    command.params = [param for param in command.params if param.name != "detach"]
    return command


main.add_command(undetached(worker))
main.add_command(undetached(beat))


if __name__ == "__main__":
    # As with `celery`, an option can come from the environment: CELERY_WORKER_CONCURRENCY=4 is --concurrency=4.
    main(auto_envvar_prefix="CELERY", prog_name=PROG)
