import sys

from gpuwarden.worker.main import main

sys.exit(main())
