"""The ``modelyard`` command.

Each sub-command lives in its own module here and is added to :data:`main`
below; a new command group is one module plus one ``add_command`` line.
"""

from __future__ import annotations

import click

from modelyard._version import __version__
from modelyard.cli._db import db_group
from modelyard.cli._env import env_group
from modelyard.cli._import import import_group
from modelyard.cli._info import info
from modelyard.cli._keys import keys_group
from modelyard.cli._models import alias_group, models_group
from modelyard.cli._predict import predict
from modelyard.cli._runs import runs_group
from modelyard.cli._serve import serve
from modelyard.cli._server import audit_command, permission_group, server_group, token_group
from modelyard.cli._sign import sign, verify
from modelyard.cli._signing import signing_group
from modelyard.cli._trust import trust_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelyard")
def main() -> None:
    """Persist, register and load models by URI, whatever framework trained them."""


main.add_command(info)
main.add_command(env_group)
main.add_command(predict)
main.add_command(serve)
main.add_command(models_group)
main.add_command(alias_group)
main.add_command(runs_group)
main.add_command(db_group)
main.add_command(server_group)
main.add_command(token_group)
main.add_command(permission_group)
main.add_command(audit_command)
main.add_command(import_group)
main.add_command(trust_group)
main.add_command(keys_group)
main.add_command(sign)
main.add_command(verify)
main.add_command(signing_group)
