complete -c ect-run -l analyze -d 'Explain what would be decided for the stderr text in FILE (or standard input when FILE is absent or `-`): the failure found, and whether the toolbox was involved. Sends nothing' -r -F
complete -c ect-run -l server-url -d 'The reporting server [default: from the environment, the config file, else http://localhost:9898]' -r -f
complete -c ect-run -l sentry-dsn -d 'Also report to a Sentry-protocol tracker (Sentry, GlitchTip, Bugsink): its project\'s DSN, https://KEY@HOST[:PORT][/PATH]/PROJECT [default: $ECT_RUN_SENTRY_DSN, else the config file\'s sentry_dsn]' -r -f
complete -c ect-run -l config -d 'The config file [default: $ECT_RUN_CONFIG, else $XDG_CONFIG_HOME/ect-run/config.json]' -r -F
complete -c ect-run -l toolbox-pattern -d 'A regular expression: a frame whose file path or function matches it counts as toolbox code, in addition to the built-in rules. Repeatable' -r
complete -c ect-run -l tail-size -d 'How much of the command\'s stderr to keep for analysis, e.g. 1MiB, 512KiB, 2000000' -r
complete -c ect-run -l connect-timeout -d 'Seconds to wait for the server to accept a connection' -r
complete -c ect-run -l timeout -d 'Seconds a delivery may take in all, after which the report is kept on disk for later' -r
complete -c ect-run -l completions -d 'Print a completion script for SHELL to standard output' -r -f -a "bash\t''
elvish\t''
fish\t''
powershell\t''
zsh\t''"
complete -c ect-run -l consent -d 'Ask whether failures may be reported to the server, and store the answer in the config file'
complete -c ect-run -l revoke-consent -d 'Withdraw consent: nothing is sent from now on'
complete -c ect-run -l status -d 'Show consent, the server URL and where it came from, the config file, and reports waiting to be sent'
complete -c ect-run -l test-failure -d 'Run a child that fails inside toolbox code, the way the toolbox\'s `FailureReporter.raise_error()` does, and report it like any run'
complete -c ect-run -l send-pending -d 'Send the reports kept on disk because they could not be delivered'
complete -c ect-run -l history -d 'List the failures recorded on this machine, newest first, one line per failure with how many runs hit it (see --all, --json)'
complete -c ect-run -l all -d 'With --history: one line per run instead of one per failure'
complete -c ect-run -l json -d 'With --analyze: print one JSON object instead of a summary. With --history: one JSON object per line'
complete -c ect-run -l dry-run -d 'Print the report that would be sent (on stderr), and send nothing'
complete -c ect-run -l internal-raise-error -d 'Internal: the child that --test-failure runs when the toolbox\'s Python package is not installed'
complete -c ect-run -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ect-run -s V -l version -d 'Print version'
