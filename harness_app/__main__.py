from harness_app.cli import main

main()
