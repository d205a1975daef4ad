"""Entry point of the frozen app (PyInstaller runs this file as __main__): `nnstudio.cli.main`.

The frozen `nnstudio` takes the same arguments as the pip-installed command: no argument or a file
opens the window; `train`, `info`, `--version`, `--self-test` and `tensorboard ...` (the bundled
TensorBoard server, since a frozen app has no `tensorboard` executable) run headless.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    # A frozen app re-executes itself for multiprocessing children (spawn, forkserver, DataLoader
    # workers): freeze_support() turns such a run into the child instead of a second app.
    multiprocessing.freeze_support()
    from nnstudio.cli import main

    sys.exit(main())
