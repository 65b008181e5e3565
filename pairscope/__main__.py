from pairscope.cli import main

raise SystemExit(main())
