import sys

from sign_datasets.cli import main

sys.exit(main())
