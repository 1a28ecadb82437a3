#include "common/csv_record.h"

namespace semcached {

bool ReadCsvRecord(std::istream& in, char separator, std::vector<std::string>* fields) {
  fields->clear();
  std::string field;
  bool quoted = false, any = false;
  for (char c; in.get(c);) {
    any = true;
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (in.peek() == '"') {
        field += '"';
        in.get(c);
      } else {
        quoted = false;
      }
    } else if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == separator) {
      fields->push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      break;
    } else if (c != '\r') {
      field += c;
    }
  }
  if (!any) return false;
  fields->push_back(std::move(field));
  return true;
}

}  // namespace semcached
