
use builtin;
use str;

set edit:completion:arg-completer[ect-run] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'ect-run'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'ect-run'= {
            cand --analyze 'Explain what would be decided for the stderr text in FILE (or standard input when FILE is absent or `-`): the failure found, and whether the toolbox was involved. Sends nothing'
            cand --server-url 'The reporting server [default: from the environment, the config file, else http://localhost:9898]'
            cand --sentry-dsn 'Also report to a Sentry-protocol tracker (Sentry, GlitchTip, Bugsink): its project''s DSN, https://KEY@HOST[:PORT][/PATH]/PROJECT [default: $ECT_RUN_SENTRY_DSN, else the config file''s sentry_dsn]'
            cand --config 'The config file [default: $ECT_RUN_CONFIG, else $XDG_CONFIG_HOME/ect-run/config.json]'
            cand --toolbox-pattern 'A regular expression: a frame whose file path or function matches it counts as toolbox code, in addition to the built-in rules. Repeatable'
            cand --tail-size 'How much of the command''s stderr to keep for analysis, e.g. 1MiB, 512KiB, 2000000'
            cand --connect-timeout 'Seconds to wait for the server to accept a connection'
            cand --timeout 'Seconds a delivery may take in all, after which the report is kept on disk for later'
            cand --completions 'Print a completion script for SHELL to standard output'
            cand --consent 'Ask whether failures may be reported to the server, and store the answer in the config file'
            cand --revoke-consent 'Withdraw consent: nothing is sent from now on'
            cand --status 'Show consent, the server URL and where it came from, the config file, and reports waiting to be sent'
            cand --test-failure 'Run a child that fails inside toolbox code, the way the toolbox''s `FailureReporter.raise_error()` does, and report it like any run'
            cand --send-pending 'Send the reports kept on disk because they could not be delivered'
            cand --history 'List the failures recorded on this machine, newest first, one line per failure with how many runs hit it (see --all, --json)'
            cand --all 'With --history: one line per run instead of one per failure'
            cand --json 'With --analyze: print one JSON object instead of a summary. With --history: one JSON object per line'
            cand --dry-run 'Print the report that would be sent (on stderr), and send nothing'
            cand --internal-raise-error 'Internal: the child that --test-failure runs when the toolbox''s Python package is not installed'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
