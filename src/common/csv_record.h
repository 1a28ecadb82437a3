// One record of RFC 4180 CSV (or TSV): the labelled pair files `semcached tune` and the
// quality benchmarks read. Quoted fields may hold separators, doubled quotes and newlines.
#pragma once

#include <istream>
#include <string>
#include <vector>

namespace semcached {

// Reads the next record into `fields`; false at the end of the input.
bool ReadCsvRecord(std::istream& in, char separator, std::vector<std::string>* fields);

}  // namespace semcached
