/* Hexadecimal digits and percent-encoding: text-encoding.h. */
#include "config.h"

#include "text-encoding.h"

int mandate_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void mandate_hex_encode(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
}

bool mandate_url_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

int mandate_percent_decode_octet(const char *s, size_t len)
{
    int hi = len >= 3 ? mandate_hex_value(s[1]) : -1,
        lo = hi >= 0 ? mandate_hex_value(s[2]) : -1;
    return lo >= 0 ? hi << 4 | lo : -1;
}

char *mandate_percent_octet(char *out, unsigned char c)
{
    static const char digits[] = "0123456789ABCDEF";
    out[0] = '%';
    out[1] = digits[c >> 4];
    out[2] = digits[c & 0xf];
    return out + 3;
}

char *mandate_percent_encode(const char *s, bool space_as_plus, char *out)
{
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (mandate_url_unreserved(*p))
            *o++ = (char)*p;
        else if (*p == ' ' && space_as_plus)
            *o++ = '+';
        else
            o = mandate_percent_octet(o, *p);
    }
    *o = '\0';
    return out;
}
