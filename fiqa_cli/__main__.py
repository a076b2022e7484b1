from fiqa_cli.cli import main

main()
