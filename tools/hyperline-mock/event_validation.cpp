// event_validation.cpp: Hyperline event rules and JSON text helpers.
#include "event_validation.hpp"

#include <cctype>

namespace hyperline {
namespace mock {

namespace {

// Parses exactly n digits at s[*p]; false if they are not all digits.
bool Digits(const std::string& s, size_t* p, size_t n, int* out) {
  if (*p + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[*p + i];
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *p += n;
  *out = v;
  return true;
}

// Consumes the character c at s[*p]; false if it is not there.
bool Expect(const std::string& s, size_t* p, char c) {
  if (*p >= s.size() || s[*p] != c) return false;
  (*p)++;
  return true;
}

// Returns the number of days in a month of a (proleptic Gregorian) year.
int DaysInMonth(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Checks one record property value: scalar, null, or array of scalars.
std::string ValidateRecordValue(const std::string& name, const nlohmann::json& v) {
  if (v.is_object()) {
    return "record." + name +
           " is an object; record properties must be strings, numbers, "
           "booleans or arrays of those (nested objects are rejected)";
  }
  if (v.is_array()) {
    for (const auto& item : v) {
      if (item.is_object() || item.is_array()) {
        return "record." + name + " contains " + (item.is_object() ? "an object" : "an array") +
               "; arrays in record may only hold strings, numbers and booleans (arrays of "
               "objects are rejected)";
      }
    }
  }
  return "";
}

// Checks that field is a non-empty string.
std::string RequireNonEmptyString(const nlohmann::json& event, const char* field) {
  auto it = event.find(field);
  if (it == event.end() || it->is_null()) return std::string(field) + " is required";
  if (!it->is_string()) return std::string(field) + " must be a string";
  if (it->get_ref<const std::string&>().empty()) return std::string(field) + " must not be empty";
  return "";
}

}  // namespace

bool IsIso8601DateTime(const std::string& s) {
  size_t p = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(s, &p, 4, &year) || !Expect(s, &p, '-') || !Digits(s, &p, 2, &month) ||
      !Expect(s, &p, '-') || !Digits(s, &p, 2, &day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return false;
  if (p >= s.size() || (s[p] != 'T' && s[p] != 't')) return false;
  p++;
  if (!Digits(s, &p, 2, &hour) || !Expect(s, &p, ':') || !Digits(s, &p, 2, &minute) ||
      !Expect(s, &p, ':') || !Digits(s, &p, 2, &second)) {
    return false;
  }
  if (hour > 23 || minute > 59 || second > 60) return false;
  if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
    p++;
    size_t start = p;
    while (p < s.size() && isdigit(static_cast<unsigned char>(s[p]))) p++;
    if (p == start || p - start > 9) return false;
  }
  if (p >= s.size()) return false;  // a zone is required: Z or an offset
  if (s[p] == 'Z' || s[p] == 'z') return p + 1 == s.size();
  if (s[p] != '+' && s[p] != '-') return false;
  p++;
  int oh, om = 0;
  if (!Digits(s, &p, 2, &oh)) return false;
  if (p < s.size()) {
    if (s[p] == ':') p++;
    if (!Digits(s, &p, 2, &om)) return false;
  }
  return p == s.size() && oh <= 23 && om <= 59;
}

std::string RecordIdKey(const nlohmann::json& id) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number()) return id.dump();
  return "";
}

std::string ValidateEvent(const nlohmann::json& event) {
  if (!event.is_object()) return "event must be a JSON object";
  std::string err = RequireNonEmptyString(event, "customer_id");
  if (!err.empty()) return err;
  err = RequireNonEmptyString(event, "event_type");
  if (!err.empty()) return err;

  auto ts = event.find("timestamp");
  if (ts == event.end() || ts->is_null()) {
    return "timestamp is required (ISO 8601 string such as 2024-12-20T16:04:11Z, or "
           "milliseconds since epoch)";
  }
  if (ts->is_string()) {
    const std::string& text = ts->get_ref<const std::string&>();
    // Hyperline's API reference types timestamp as a string holding an ISO 8601
    // date-time "or milliseconds since the epoch": accept "1734710651000" too.
    bool millis = !text.empty() && text.size() <= 15 &&
                  text.find_first_not_of("0123456789") == std::string::npos;
    if (!millis && !IsIso8601DateTime(text)) {
      return "timestamp " + ts->dump() +
             " is not an ISO 8601 date-time with a zone (e.g. 2024-12-20T16:04:11Z) nor "
             "milliseconds since epoch";
    }
  } else if (ts->is_number_integer()) {
    if (ts->is_number_unsigned() ? false : ts->get<int64_t>() < 0) {
      return "timestamp must not be negative";
    }
  } else if (ts->is_number_float()) {
    return "timestamp must be an integer number of milliseconds since epoch, got " + ts->dump();
  } else {
    return "timestamp must be an ISO 8601 string or an integer of milliseconds since epoch";
  }

  auto rec = event.find("record");
  if (rec == event.end() || rec->is_null()) return "record is required";
  if (!rec->is_object()) return "record must be an object";
  auto id = rec->find("id");
  if (id == rec->end() || id->is_null()) return "record.id is required";
  if (!(id->is_string() || id->is_number()) ||
      (id->is_string() && id->get_ref<const std::string&>().empty())) {
    return "record.id must be a non-empty string or a number";
  }
  for (auto it = rec->begin(); it != rec->end(); ++it) {
    if (it.key() == "id") continue;
    err = ValidateRecordValue(it.key(), it.value());
    if (!err.empty()) return err;
  }
  return "";
}

std::string CompactJson(const std::string& text) {
  std::string out(text.size(), '\0');
  char* dst = &out[0];
  const char* p = text.data();
  const char* end = p + text.size();
  // A UTF-8 byte order mark is skipped by the parser, so it goes here too.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) p += 3;
  while (p < end) {
    char ch = *p++;
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
    *dst++ = ch;
    if (ch != '"') continue;
    // Copy the string through its closing quote, escapes included.
    while (p < end) {
      char c = *p++;
      *dst++ = c;
      if (c == '\\' && p < end) {
        *dst++ = *p++;
      } else if (c == '"') {
        break;
      }
    }
  }
  out.resize(static_cast<size_t>(dst - out.data()));
  return out;
}

std::vector<std::pair<size_t, size_t>> SplitArrayElements(const std::string& compact) {
  std::vector<std::pair<size_t, size_t>> spans;
  if (compact.size() < 2 || compact[0] != '[') return spans;
  int depth = 0;
  bool in_string = false;
  size_t start = 1;
  for (size_t i = 1; i < compact.size(); i++) {
    char ch = compact[i];
    if (in_string) {
      if (ch == '\\') {
        i++;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      depth++;
    } else if (ch == '}' || (ch == ']' && depth > 0)) {
      depth--;
    } else if (depth == 0 && (ch == ',' || ch == ']')) {
      if (i > start) spans.emplace_back(start, i);
      start = i + 1;
      if (ch == ']') break;
    }
  }
  return spans;
}

std::string JsonString(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string WithError(const std::string& compact_event, const std::string& reason) {
  std::string error = "\"error\":" + JsonString(reason);
  if (compact_event.size() >= 2 && compact_event.front() == '{' && compact_event.back() == '}') {
    if (compact_event == "{}") return "{" + error + "}";
    return compact_event.substr(0, compact_event.size() - 1) + "," + error + "}";
  }
  return "{\"event\":" + compact_event + "," + error + "}";
}

}  // namespace mock
}  // namespace hyperline
