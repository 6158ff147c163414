from recviz.cli import main

raise SystemExit(main())
