from oco.cli import main

raise SystemExit(main())
