from nbdeploy.cli.main import main

main()
