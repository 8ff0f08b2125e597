from vft.cli import main

main()
