import sys

if sys.argv[1:2] == ["serve"]:  # the HTTP service has its own parser (sandbox/serve/)
    from sandbox.serve import main

    sys.exit(main(sys.argv[2:]))

from sandbox.cli import main

sys.exit(main())
