"""``python -m recsys_rbm_cli``: the same as the ``rbm-rec`` command."""

from recsys_rbm_cli.app import main

main()
