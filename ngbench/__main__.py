from ngbench.cli import main

raise SystemExit(main())
