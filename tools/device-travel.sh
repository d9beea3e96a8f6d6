# Sourced by the offline-bundle scripts: what travels with every device call besides what it
# carries (the tool's 64 MiB limit counts it all).
TRAVEL_MIB=64

# tracked + untracked-not-ignored files of the repo, in bytes
travel_repo_bytes() {
    (cd "$1" && git ls-files -z -c -o --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null) \
        | awk '{s += $1} END {print s + 0}'
}

# a shared/ folder inside the checkout travels too, in bytes
travel_shared_bytes() {
    if [ -d "$1/shared" ]; then du -sb "$1/shared" | cut -f1; else echo 0; fi
}
