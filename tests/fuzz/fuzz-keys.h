/* Fixed signing keys for the fuzz harnesses and tests/fuzz/make-seeds.c: the
 * seeds carry valid signatures by these keys, so the fuzzer starts past the
 * signature check. Test keys only, made once with openssl genpkey. */
#ifndef MANDATE_FUZZ_KEYS_H
#define MANDATE_FUZZ_KEYS_H

static const char fuzz_key_ec_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZmB2/QE+pAniQNI0\n"
    "/Xgu7BjBI/PrYHPndRPgVBOlRPmhRANCAAStl9tjOxWhNSItt7pH5ai9abMj9/Wx\n"
    "DIMKHceMxLwSQ+p3Hke8GPZfsoJHmjp7DOfo9stF6rAqf/6pgw3b/ULR\n"
    "-----END PRIVATE KEY-----\n"
    ;

static const char fuzz_key_rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQD38bwITDHv+ir6\n"
    "qJXqtrzwFx4tslhAbUmc+HBAy8exhLmmTYNJTCQJaijIgW6SV6rpUDA7WG5bQTMb\n"
    "RGAfGbUp8RPs7GzeKrs3q8SlOHFJkMUy267c98zYKxA5Jxt6WCOj9wC2MPrf/2QQ\n"
    "jE8TyKJ4irekrWE2P9VxZPD5qy1dbgBUytRQ1kDxziLLIbnlIkQMuxMMseECV74U\n"
    "41I3Un4huIuGC+hPb8mMdy9+PgUVROripskK3YidMPcele2JrB0ngOGt6oNqlI9e\n"
    "rSEg9Tlt1S+bZqRIvFRRJYqb/Et0hdKmT4HCnN1V5dGhi8BwPiVBEsr1+vtU//qT\n"
    "zs9BcesfAgMBAAECggEAAZn5NddPWUMoS08scx3A2A7y96bK8buWLQitXO9g0YSc\n"
    "cfajmvHkp7G2V4X/S1WvbNHDEspBVQVb4z8ZUD1PxL7h+vbgXlaWhMdvJGwNaBHv\n"
    "aO+Vtqd14ycmc/mmY69op4X2zLZ04F6B0tnwWgRC1fyulZM2T6EXUiPg3i2QKoxo\n"
    "lfYYaVZ2YQWaOsugKBEW5INBrrw4sxbvcWae0BlCepp9HN79lPvUhRhq61YFPxMt\n"
    "WUaS0DQCCTnQvnqAsjPTP95hJDBS/qN/xSwVD17ID3tJAI98r2rUp89T7s51flYZ\n"
    "ivbZZwznSxbH4iWMhWBrNlrhpockXhd1qYTUeTvd2QKBgQD8xodAx6qPkJpTpXos\n"
    "al1+ehpsuli70S9apJyl/vHzMhFjCT8a8ToLBGNSnWuVYU9no2eyXfmNz1HDNSWL\n"
    "NzJ2Og//ihh3IGwlwsTsyVa6D732CvgB6/fgX1NwZRUt7TBBYNq1+fhYvir/yRfd\n"
    "GbrTSC2eBfsSc7RK1tdZzLytBwKBgQD7G23dyCSq248ZO6KAa82Qxl3Dx239JkAy\n"
    "XqOOsiJivbfmh/x8lgXnlINft+pV4clZm1b71mzv1l45HdgtpLYZDTwFLOm0YNcv\n"
    "sHAESqbiogoccnEliOf4Lwigg3jOEIAn8RhoLZNQ46TxlFX4q8MCZmxWuLpdGMwb\n"
    "hYOHUYvjKQKBgQDJBb1UaDWdPLtuoB/cKK63wbU4GK4ul3pYVKb7YBfcd0naf+T+\n"
    "sS6eyluOvQBs6Nl0K0BxWkj3XRPB8YctArWPzjcg2xr/yfoXwaBISwo8p/5DKI/5\n"
    "P0Z+2nCJ5umD/6grpjHpHKVDNeEOUEc5H5gzJKiajlkQYJHWHqtej/LQiwKBgFYb\n"
    "JMR9Yh14poxHh8SzssznSLXeyBebqz3aeAlxihsD5XDWxrzOEP5FTftfrKqAfzQL\n"
    "8XrwH3DquGqrkjqslYjnoeJAcW9aGdAPl4nRM4LZf9AbajMtzCWtsy6fhqhavid0\n"
    "JCNtJWwCc8gnToe0Fm3XQ2VFeRp9a1gwo1aenvJpAoGBAO493xdkLIHdZKJw/Nx9\n"
    "bo3PFIRghPo16inFdOgQZwGVQFAyhrW4e+Qmh5v/YeSuj5Vq6H4HKAr69SBongwC\n"
    "rPfNyphhvbZUj1FWNQeqpO/sIWzZ/duOZbX2SYZL6hMUiJzm1G2q9puIqwmh9Omn\n"
    "P479eiuFU0WsuDnSBgZ2RsAK\n"
    "-----END PRIVATE KEY-----\n"
    ;

static const char fuzz_key_ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEID1XRoqh3GVRnUITTmxhdiYGq2kwHaPJdoM9fQcY9y1h\n"
    "-----END PRIVATE KEY-----\n"
    ;

#endif
