/**
 * Simulated gateways and a fake clock, for testing applications that use natmapper without a
 * real router.
 */
export {}
