from cgd_harness.cli import main

main()
