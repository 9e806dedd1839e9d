/* dataset.c: the dataset on disk: where its shard files are, its
 * manifest, and making it (again) or finding it already there.
 *
 * The dataset is a directory of shard files, generated on the first run
 * (and again whenever the requested dataset differs from the one there):
 *
 *     manifest.txt      records, item bytes, shards; written last
 *     shard-000.rec     file header, then records first .. first+count-1
 *     shard-001.rec     ...
 *
 * A shard file (integers in host byte order):
 *
 *     file header, 32 bytes:
 *         offset 0   uint32  magic "SHRD"
 *         offset 4   uint32  version (1)
 *         offset 8   uint32  shard number
 *         offset 12  uint32  payload bytes of every record
 *         offset 16  uint64  index of its first record
 *         offset 24  uint64  number of records
 *     then each record, a 24-byte header and its payload:
 *         offset 0   uint32  magic "REC1"
 *         offset 4   uint32  payload length
 *         offset 8   uint64  record index
 *         offset 16  uint32  shard number
 *         offset 20  uint32  CRC-32 of the payload
 *         offset 24  ...     payload (pseudo-random bytes)
 */
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MANIFEST "manifest.txt"
#define MANIFEST_FORMAT "subiter-loader dataset 1"

int shard_mine(const struct dataset *ds, unsigned long s)
{
    return ds->world <= 1 || s % ds->world == ds->rank;
}

unsigned long shard_first(const struct dataset *ds, unsigned long s)
{
    return (unsigned long)((uint64_t)s * ds->records / ds->shards);
}

unsigned long shard_count(const struct dataset *ds, unsigned long s)
{
    return shard_first(ds, s + 1) - shard_first(ds, s);
}

uint64_t record_bytes(const struct dataset *ds)
{
    return REC_HEADER_BYTES + (uint64_t)ds->item_bytes;
}

/* Its file's path (options_parse() checked the length of dir). */
void shard_path(const struct dataset *ds, unsigned long s, char *path,
                size_t size)
{
    snprintf(path, size, "%s/shard-%03lu.rec", ds->dir, s);
}

/* Create dir and its parents, as mkdir -p; 0, or -1 after a message. */
static int make_dirs(struct console *con, const char *dir)
{
    char path[DIR_MAX + 1];
    struct stat sb;
    size_t i;

    snprintf(path, sizeof path, "%s", dir);
    for (i = 1; path[i] != '\0'; i++) {
        if (path[i] == '/') {
            path[i] = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                say(con, "%s: cannot create directory: %s", path,
                    strerror(errno));
                return -1;
            }
            path[i] = '/';
        }
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        say(con, "%s: cannot create directory: %s", path, strerror(errno));
        return -1;
    }
    if (stat(path, &sb) != 0) {
        say(con, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        say(con, "%s: not a directory", path);
        return -1;
    }
    return 0;
}

/* Read dir/manifest.txt into *ds (dir set); 1 if it is there and valid. */
static int manifest_read(struct dataset *ds)
{
    char path[PATH_BYTES];
    FILE *f;
    int n;

    snprintf(path, sizeof path, "%s/%s", ds->dir, MANIFEST);
    if ((f = fopen(path, "r")) == NULL) {
        return 0;
    }
    n = fscanf(
        f, MANIFEST_FORMAT " records %lu item_bytes %lu shards %lu corrupt %ld",
        &ds->records, &ds->item_bytes, &ds->shards, &ds->corrupt);
    fclose(f);
    return n == 4 && ds->records >= 1 && ds->records <= MAX_RECORDS &&
           ds->item_bytes >= 1 && ds->item_bytes <= MAX_ITEM_BYTES &&
           ds->shards >= 1 && ds->shards <= MAX_SHARDS && ds->corrupt >= -1 &&
           ds->corrupt < (long)ds->shards;
}

/* Write the manifest (atomically, by rename); 0 or -1 after a message. */
static int manifest_write(struct console *con, const struct dataset *ds)
{
    char path[PATH_BYTES], tmp[PATH_BYTES + 8];
    FILE *f;
    int bad;

    snprintf(path, sizeof path, "%s/%s", ds->dir, MANIFEST);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL) {
        say(con, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f,
            MANIFEST_FORMAT "\nrecords %lu\nitem_bytes %lu\nshards %lu\n"
                            "corrupt %ld\n",
            ds->records, ds->item_bytes, ds->shards, ds->corrupt);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        say(con, "%s: write failed: %s", tmp, strerror(errno));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        say(con, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove the manifest: from now on the dataset is incomplete. */
static int manifest_remove(struct console *con, const struct dataset *ds)
{
    char path[PATH_BYTES];

    snprintf(path, sizeof path, "%s/%s", ds->dir, MANIFEST);
    if (unlink(path) != 0 && errno != ENOENT) {
        say(con, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove shard files [from, to) left by an earlier, larger dataset. */
static void shards_remove(const struct dataset *ds, unsigned long from,
                          unsigned long to)
{
    char path[PATH_BYTES];
    unsigned long s;

    for (s = from; s < to && s < MAX_SHARDS; s++) {
        shard_path(ds, s, path, sizeof path);
        (void)unlink(path);
    }
}

/*
 * Cut shard s short, in the middle of its middle record (or of its file
 * header if it has none): the reader must report a truncated record.
 */
static int shard_corrupt(struct console *con, const struct dataset *ds,
                         unsigned long s)
{
    char path[PATH_BYTES];
    unsigned long count = shard_count(ds, s);
    uint64_t size = FILE_HEADER_BYTES / 2;

    shard_path(ds, s, path, sizeof path);
    if (count > 0) {
        size = FILE_HEADER_BYTES + count / 2 * record_bytes(ds) +
               record_bytes(ds) / 2;
    }
    if (truncate(path, (off_t)size) != 0) {
        say(con, "%s: cannot truncate: %s", path, strerror(errno));
        return -1;
    }
    printf("corrupted:   %s cut to %llu bytes", path, (unsigned long long)size);
    if (count > 0) {
        printf(", in the middle of record %lu\n",
               shard_first(ds, s) + count / 2);
    } else {
        printf(", in its file header\n");
    }
    return 0;
}

/*
 * Make sure the directory holds the dataset opt->want: reuse what is there
 * when it matches, repair or cut the one shard --corrupt concerns, or
 * generate it all. The number of shards must match too if --shards was
 * given. 0, or -1 after a message.
 */
int dataset_prepare(struct console *con, const struct options *opt,
                    struct dataset *want)
{
    struct dataset have = opt->want;
    int same, cut = opt->want.corrupt >= 0;
    uint64_t bytes;
    double t0;

    *want = opt->want;
    if (make_dirs(con, want->dir) != 0) {
        return -1;
    }
    same = manifest_read(&have) && !opt->regenerate &&
           have.records == want->records &&
           have.item_bytes == want->item_bytes &&
           (!opt->shards_given || have.shards == want->shards);
    if (same) {
        want->shards = have.shards;
        printf("dataset:     %s: %lu shards, %lu records of %lu bytes "
               "(reused; --regenerate makes it again)\n",
               want->dir, want->shards, want->records, want->item_bytes);
        if (have.corrupt >= 0 && !cut) {
            /* An earlier --corrupt run cut this shard: make it again. */
            want->corrupt = -1;
            if (manifest_remove(con, want) != 0 ||
                shards_generate(con, want, (unsigned long)have.corrupt,
                                (unsigned long)have.corrupt + 1) != 0) {
                return -1;
            }
            printf("repaired:    shard-%03ld.rec (cut by an earlier run)\n",
                   have.corrupt);
        } else if (have.corrupt >= 0) {
            want->corrupt = have.corrupt; /* already cut */
            printf("corrupted:   shard-%03ld.rec (cut by an earlier run)\n",
                   have.corrupt);
            return 0;
        } else if (!cut) {
            return 0;
        }
    } else {
        bytes = FILE_HEADER_BYTES * (uint64_t)want->shards +
                record_bytes(want) * want->records;
        printf("dataset:     %s: generating %lu shards, %lu records of %lu "
               "bytes (%.1f MB)\n",
               want->dir, want->shards, want->records, want->item_bytes,
               (double)bytes / 1e6);
        fflush(stdout);
        t0 = now_s();
        if (manifest_remove(con, want) != 0) {
            return -1;
        }
        if (have.shards > want->shards) {
            shards_remove(want, want->shards, have.shards);
        }
        if (shards_generate(con, want, 0, want->shards) != 0) {
            return -1;
        }
        printf("generated:   %.1f MB in %.2f s\n", (double)bytes / 1e6,
               now_s() - t0);
    }
    if (cut) {
        /* The middle shard: its neighbours on either side still finish. */
        want->corrupt = (long)(want->shards / 2);
        if (manifest_remove(con, want) != 0 ||
            shard_corrupt(con, want, (unsigned long)want->corrupt) != 0) {
            return -1;
        }
    }
    fflush(stdout);
    return manifest_write(con, want);
}
