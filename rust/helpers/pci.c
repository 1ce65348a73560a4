// SPDX-License-Identifier: GPL-2.0

#include <linux/pci.h>

/* The Rust PCI abstractions exist only with CONFIG_PCI. */
#ifdef CONFIG_PCI

unsigned long rust_helper_pci_resource_flags(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}

resource_size_t rust_helper_pci_resource_start(struct pci_dev *pdev, int bar)
{
	return pci_resource_start(pdev, bar);
}

resource_size_t rust_helper_pci_resource_len(struct pci_dev *pdev, int bar)
{
	return pci_resource_len(pdev, bar);
}

int rust_helper_pcibios_err_to_errno(int err)
{
	return pcibios_err_to_errno(err);
}

bool rust_helper_pci_dev_msi_enabled(struct pci_dev *pdev)
{
	return pci_dev_msi_enabled(pdev);
}

bool rust_helper_pci_is_enabled(struct pci_dev *pdev)
{
	return pci_is_enabled(pdev);
}

#ifndef CONFIG_PCI_MSI
int rust_helper_pci_alloc_irq_vectors(struct pci_dev *dev,
				      unsigned int min_vecs,
				      unsigned int max_vecs,
				      unsigned int flags)
{
	return pci_alloc_irq_vectors(dev, min_vecs, max_vecs, flags);
}

void rust_helper_pci_free_irq_vectors(struct pci_dev *dev)
{
	pci_free_irq_vectors(dev);
}

int rust_helper_pci_irq_vector(struct pci_dev *pdev, unsigned int vec)
{
	return pci_irq_vector(pdev, vec);
}
#endif /* !CONFIG_PCI_MSI */

#endif /* CONFIG_PCI */
