/* Placeholder: unit tests of the oidc backend plugin. */
int main(void) { return 77; }
