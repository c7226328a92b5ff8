import sys

from sign_datasets.cli.commands import main

sys.exit(main())
