from sqi_cli.main import main

raise SystemExit(main())
