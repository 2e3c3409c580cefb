"""Command line: `makemore [train]`, `makemore sample`, `makemore eval`, ...

parser.py holds every subcommand's flags, commands.py what each does; main() ties them together and
turns every user error into one line on stderr, exit 2. Also accepts the original makemore.py's flag
names (-i/--input-file, -o/--work-dir, --sample-only, ...), so its users can switch without relearning.
"""

from __future__ import annotations

import sys

from .. import distributed as D
from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..constrain import ConstraintError
from ..data import DataError
from ..export import ExportError
from ..likely import SearchError
from ..models import ModelConfigError
from ..sample import SampleError
from ..score import ScoreError
from ..train import TrainingDiverged
from .commands import HANDLERS
from .parser import build_parser, config_overrides

USER_ERRORS = (ConfigError, DataError, CheckpointError, SampleError, ScoreError, ExportError, ModelConfigError,
               ConstraintError, SearchError)

__all__ = ["USER_ERRORS", "build_parser", "config_overrides", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0] not in HANDLERS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "train")  # `makemore --type mlp` means `makemore train --type mlp`
    args = parser.parse_args(argv)
    args.argv = argv  # a sweep with --jobs gives each run's process its own command line
    # Under torchrun every process says the error it meets: torchrun tears the others down as soon as one
    # exits, so a process that left it to another could leave it unsaid.
    try:
        return HANDLERS[args.command](args)
    except (*USER_ERRORS, D.Aborted) as e:  # Aborted: rank 0 refused the run; this rank says why too
        print(f"makemore: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"makemore: error: {e}", file=sys.stderr)
        return 1
    except D.PeerLost as e:  # said by every process still alive: each knows only that a peer is gone
        print(f"makemore: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("makemore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
