//go:build !unix

package smallfile

import "io/fs"

// fileID returns zeros: this system's file information has no inode
// numbers, and stamps rely on time and size alone.
func fileID(fs.FileInfo) (dev, inode uint64) { return 0, 0 }
