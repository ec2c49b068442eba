# bash completion for azbatch: verbs, flags and flag values, from the CLI's
# own tables (the hidden verb "azbatch __complete WORD..." lists them).
#   . scripts/azbatch-completion.bash      (or copy it to /etc/bash_completion.d/azbatch)

_azbatch() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local candidates
  # The words up to and including the one being completed, after the command name.
  candidates=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
  if [ "$candidates" = "__files__" ]; then
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$candidates" -- "$cur")
  fi
}

complete -o default -F _azbatch azbatch
