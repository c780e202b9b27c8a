import sys

from infra.services import main

sys.exit(main())
