mod sim_openrouter;
