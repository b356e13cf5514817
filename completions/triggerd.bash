# bash completion for triggerd; installed as share/bash-completion/completions/triggerd.
# The subcommands and flags here must be the ones `triggerd [COMMAND] --help` lists:
# tests/integration/test_cli.py runs this function and compares.

_triggerd() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="run check publish redrive status version"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$commands -h --help -V --version" -- "$cur"))
        return 0
    fi
    local cmd=${COMP_WORDS[1]} opts=""
    case $cmd in
    run | check) opts="-c --config -h --help" ;;
    publish)
        opts="-d --data -k --key -H --header --ce-type --ce-source --ce-id --content-type -c --config --from -X --property -h --help
              --tls-ca --tls-cert --tls-key --tls-server-name --tls-insecure-skip-verify"
        ;;
    redrive) opts="-c --config --from --queue --trigger --reason --limit --dry-run -h --help" ;;
    status) opts="-c --config --json -h --help" ;;
    version) opts="-h --help" ;;
    *) return 0 ;;
    esac
    case $prev in
    -c | --config | --tls-ca | --tls-cert | --tls-key)
        COMPREPLY=($(compgen -f -- "$cur")) # a trigger file or a directory of them; a PEM file
        return 0
        ;;
    --reason)
        COMPREPLY=($(compgen -W "final_status retries_exhausted max_deliveries invalid_event schema reply_failed" -- "$cur"))
        return 0
        ;;
    -d | --data | -k | --key | -H | --header | --ce-type | --ce-source | --ce-id | --content-type | \
        --tls-server-name | --from | --queue | --trigger | --limit | -X | --property)
        return 0 # a value of the user's
        ;;
    esac
    if [ "$cmd" = publish ] && [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W "redis:// rediss:// kafka:// amqp:// amqps://" -- "$cur"))
        compopt -o nospace 2>/dev/null
        return 0
    fi
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _triggerd triggerd
