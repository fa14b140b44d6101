// `creatord backup DEST`, `creatord restore SRC` and `creatord verify`: a data folder copied while
// the server runs, put back, and checked.
//
// A backup folder holds a consistent snapshot of the SQLite database (VACUUM INTO, one read
// transaction: every write committed before it began is in it), every image file the snapshot
// names (under blobs/, as in a data folder), and manifest.json with the size and SHA-256 of each.
// Backing up into the same folder again copies only the image files it does not hold yet (they
// are named by their content), then switches to the new manifest and drops what it no longer
// names. On PostgreSQL the database holds everything: pg_dump or PITR back it up (README).
#pragma once
#include <string>

#include "app/config.hpp"

namespace creatord {

// Exit codes: 0 done, 1 failed (the reason on stderr), 2 not possible with this store.
int run_backup(const Config& cfg, const std::string& dest);
// Into an empty data folder, only after every checksum of SRC matched (a mismatch names the file
// and nothing is written); then the restored folder is verified.
int run_restore(const Config& cfg, const std::string& src);
// The checks a restore ends with, on a data folder (SQLite) or a database (PostgreSQL): the
// database's own integrity check (SQLite), every image's bytes present with the right hash, no
// stored bytes that no image names. 0: all good; 1: each problem printed.
int run_verify(const Config& cfg);

}  // namespace creatord
