
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ect-run' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ect-run'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ect-run' {
            [CompletionResult]::new('--analyze', '--analyze', [CompletionResultType]::ParameterName, 'Explain what would be decided for the stderr text in FILE (or standard input when FILE is absent or `-`): the failure found, and whether the toolbox was involved. Sends nothing')
            [CompletionResult]::new('--server-url', '--server-url', [CompletionResultType]::ParameterName, 'The reporting server [default: from the environment, the config file, else http://localhost:9898]')
            [CompletionResult]::new('--sentry-dsn', '--sentry-dsn', [CompletionResultType]::ParameterName, 'Also report to a Sentry-protocol tracker (Sentry, GlitchTip, Bugsink): its project''s DSN, https://KEY@HOST[:PORT][/PATH]/PROJECT [default: $ECT_RUN_SENTRY_DSN, else the config file''s sentry_dsn]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file [default: $ECT_RUN_CONFIG, else $XDG_CONFIG_HOME/ect-run/config.json]')
            [CompletionResult]::new('--toolbox-pattern', '--toolbox-pattern', [CompletionResultType]::ParameterName, 'A regular expression: a frame whose file path or function matches it counts as toolbox code, in addition to the built-in rules. Repeatable')
            [CompletionResult]::new('--tail-size', '--tail-size', [CompletionResultType]::ParameterName, 'How much of the command''s stderr to keep for analysis, e.g. 1MiB, 512KiB, 2000000')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the server to accept a connection')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds a delivery may take in all, after which the report is kept on disk for later')
            [CompletionResult]::new('--completions', '--completions', [CompletionResultType]::ParameterName, 'Print a completion script for SHELL to standard output')
            [CompletionResult]::new('--consent', '--consent', [CompletionResultType]::ParameterName, 'Ask whether failures may be reported to the server, and store the answer in the config file')
            [CompletionResult]::new('--revoke-consent', '--revoke-consent', [CompletionResultType]::ParameterName, 'Withdraw consent: nothing is sent from now on')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Show consent, the server URL and where it came from, the config file, and reports waiting to be sent')
            [CompletionResult]::new('--test-failure', '--test-failure', [CompletionResultType]::ParameterName, 'Run a child that fails inside toolbox code, the way the toolbox''s `FailureReporter.raise_error()` does, and report it like any run')
            [CompletionResult]::new('--send-pending', '--send-pending', [CompletionResultType]::ParameterName, 'Send the reports kept on disk because they could not be delivered')
            [CompletionResult]::new('--history', '--history', [CompletionResultType]::ParameterName, 'List the failures recorded on this machine, newest first, one line per failure with how many runs hit it (see --all, --json)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'With --history: one line per run instead of one per failure')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --analyze: print one JSON object instead of a summary. With --history: one JSON object per line')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the report that would be sent (on stderr), and send nothing')
            [CompletionResult]::new('--internal-raise-error', '--internal-raise-error', [CompletionResultType]::ParameterName, 'Internal: the child that --test-failure runs when the toolbox''s Python package is not installed')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
