/*
 * replay.c - runs a fuzz target over files, for corpus regression in
 * `make test` without clang. Arguments are files or directories; with none,
 * it replays tests/fuzz/corpus/<name> where the program is replay_<name>.
 * Prints one "ok" line per corpus; a crash fails the suite.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    static uint8_t buf[1 << 16];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint8_t *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees overreads */
    memcpy(copy, buf, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

/* Replays a file or every regular file in a directory; returns the count or -1. */
static long replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) < 0 ? -1 : 1;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long count = 0;
    struct dirent *e;
    char full[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (replay_file(full) < 0) {
            closedir(d);
            return -1;
        }
        count++;
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    char def[4096];
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    if (strncmp(name, "replay_", 7) == 0)
        name += 7;
    int failed = 0;
    if (argc < 2) {
        const char *root = getenv("FW_ROOT");
        snprintf(def, sizeof def, "%s/tests/fuzz/corpus/%s", root ? root : ".", name);
        long n = replay_path(def);
        printf("%s - %s corpus replayed (%ld inputs)\n", n > 0 ? "ok" : "not ok", name, n);
        return n > 0 ? 0 : 1;
    }
    for (int i = 1; i < argc; i++) {
        long n = replay_path(argv[i]);
        printf("%s - %s: %ld inputs\n", n >= 0 ? "ok" : "not ok", argv[i], n);
        failed |= n < 0;
    }
    return failed;
}
