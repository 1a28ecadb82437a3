// Handing freed heap memory back to the operating system after bulk work.
//
// Restoring a cache from disk or writing a snapshot allocates and frees hundreds of
// megabytes of temporaries. glibc keeps freed memory for reuse, so without this the process
// stays as large as its peak (measured: 293 MB resident after restoring 100,000 entries, 181
// MB after a trim). Called after such work only: a trim walks the whole heap.
#pragma once

namespace semcached {

void ReleaseFreeMemory();

}  // namespace semcached
