import sys

from gpuwarden.demo.run import main

sys.exit(main())
