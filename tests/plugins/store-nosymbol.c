/* A shared object that exports no mandate_plugin_<name> symbol. */
int mandate_unrelated_function(void);
int mandate_unrelated_function(void)
{
    return 42;
}
